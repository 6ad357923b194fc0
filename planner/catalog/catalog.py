"""The catalog: a narrow query API over validated data, loaded lazily kind by kind."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from planner.catalog import snapshot
from planner.catalog.api_names import matches_rules
from planner.catalog.loader import KINDS, CatalogIssue, KindLoad, kind_files, load_kind
from planner.errors import PlannerError, UnknownIdError
from planner.perf.params import param_counts

if TYPE_CHECKING:
    from planner.records import (
        ApiPrice,
        CheckpointSize,
        CloudOffer,
        GpuSpec,
        MeasurementRecord,
        ModelSpec,
        QualityRecord,
    )

ENV_VAR = "SELFHOST_PLANNER_CATALOG"
PARAMS_TOLERANCE = 0.05
"""Computed vs published parameter count: published sizes are rounded ("7B" for 7.25B)."""

# When a bare API model name is offered by several providers, the maker's own API wins.
FIRST_PARTY = ("openai", "anthropic", "google", "mistral", "deepseek", "x-ai", "cohere", "meta")


class CatalogError(PlannerError):
    def __init__(self, issues: Sequence[CatalogIssue]):
        shown = "\n".join(f"  {issue}" for issue in issues[:20])
        more = f"\n  ... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(
            f"the catalog has {len(issues)} problem{'s' if len(issues) != 1 else ''}:\n{shown}{more}\n"
            "fix the rows above (planner catalog validate lists them all)"
        )
        self.issues = list(issues)


def bundled_catalog_dir() -> Path:
    """The catalogs shipped with the package (inside the wheel) or beside it (a source checkout)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "catalogs", package.parent / "catalogs"):
        if (candidate / "models.yaml").is_file():
            return candidate
    raise PlannerError(
        f"bundled catalogs not found next to {package}; reinstall selfhost-planner (pip install .)"
    )


def user_catalog_dirs(
    explicit: Iterable[str | Path] = (), origin: str = "--catalog", environment: bool = True
) -> list[Path]:
    """User directories layered over the bundled catalog: $SELFHOST_PLANNER_CATALOG, then `explicit`
    (named `origin` in errors: --catalog, or the directories a command was given)."""
    dirs: list[Path] = []
    env = os.environ.get(ENV_VAR, "") if environment else ""
    for raw, where in [(p, ENV_VAR) for p in env.split(os.pathsep) if p] + [
        (str(p), origin) for p in explicit
    ]:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise PlannerError(
                f"catalog directory {raw!r} (from {where}) does not exist or is not a directory"
            )
        dirs.append(path)
    return dirs


DEPENDS = {
    "models": (),
    "gpus": (),
    "offers": ("gpus",),
    "api": ("models",),
    "checkpoints": ("models",),
    "measurements": ("models", "gpus"),
    "quality": ("models",),
}
"""Kinds whose rows a kind's cross-reference checks read: a change there invalidates its snapshot."""


class Catalog:
    """Models, GPUs, cloud offers, API prices and measurements from a stack of directories.

    Rows come from the validated snapshot when the files are unchanged (`snapshots=True`), else
    from the files, validated in full; `validate()` always reads the files.
    """

    def __init__(self, directories: Sequence[Path], snapshots: bool = True):
        self.directories = [Path(d) for d in directories]
        self.snapshots = snapshots
        self._loaded: dict[str, KindLoad] = {}
        self._checked: dict[str, KindLoad] = {}
        self._api_sorted: list[ApiPrice] | None = None
        self._api_index: dict[str, list[ApiPrice]] | None = None

    @classmethod
    def default(cls, user_dirs: Iterable[str | Path] = ()) -> Catalog:
        return cls([bundled_catalog_dir(), *user_catalog_dirs(user_dirs)])

    # -- loading -------------------------------------------------------------------------------

    def load(self, kind: str) -> KindLoad:
        if kind not in self._loaded:
            self._loaded[kind] = load_kind(KINDS[kind], self.directories)
        return self._loaded[kind]

    def _rows(self, kind: str) -> KindLoad:
        """A kind's rows once they passed every check (cross references included), else CatalogError."""
        if kind in self._checked:
            return self._checked[kind]
        fingerprint = self.fingerprint((kind, *DEPENDS[kind])) if self.snapshots else ""
        if self.snapshots:
            hit = snapshot.load(kind, fingerprint)
            if hit is not None:
                result = KindLoad()
                result.rows, result.origin, result.files = hit
                self._checked[kind] = result
                return result
        loaded = self.load(kind)
        issues = loaded.issues + self._cross_issues(kind)
        if issues:
            raise CatalogError(issues)
        self._checked[kind] = loaded
        if self.snapshots:
            snapshot.save(kind, fingerprint, loaded.rows, loaded.origin, loaded.files, KINDS[kind].row_type)
        return loaded

    def kind_files(self, kind: str) -> list[Path]:
        return [p for d in self.directories for p in kind_files(KINDS[kind], d)]

    def fingerprint(self, kinds: Iterable[str]) -> str:
        """Cheap identity of the files of some kinds (paths, sizes, times): a cache key."""
        return snapshot.files_fingerprint(p for k in kinds for p in self.kind_files(k))

    @property
    def models(self) -> dict[str, ModelSpec]:
        return dict(sorted(self._rows("models").rows.items()))  # type: ignore[arg-type]

    @property
    def gpus(self) -> dict[str, GpuSpec]:
        return dict(sorted(self._rows("gpus").rows.items()))  # type: ignore[arg-type]

    @property
    def offers(self) -> list[CloudOffer]:
        return sorted(self._rows("offers").rows.values(), key=lambda o: o.sort_key)

    def current_offers(self) -> list[CloudOffer]:
        return [o for o in self.offers if not o.history]

    @property
    def api_prices(self) -> list[ApiPrice]:
        if self._api_sorted is None:
            self._api_sorted = sorted(self._rows("api").rows.values(), key=lambda p: p.key)
        return self._api_sorted

    def _api_names(self) -> dict[str, list[ApiPrice]]:
        """Lower-cased names, aliases and pinned versions -> the prices they name (built once)."""
        if self._api_index is None:
            index: dict[str, list[ApiPrice]] = {}
            for p in self.api_prices:
                names = {p.model.lower(), *(a.lower() for a in p.aliases)}
                if p.pinned_version:
                    names.add(p.pinned_version.lower())
                for n in names:
                    index.setdefault(n, []).append(p)
            self._api_index = index
        return self._api_index

    @property
    def checkpoints(self) -> list[CheckpointSize]:
        return list(self._rows("checkpoints").rows.values())

    @property
    def measurements(self) -> list[MeasurementRecord]:
        return list(self._rows("measurements").rows.values())

    @property
    def quality(self) -> list[QualityRecord]:
        """Quality records (gpu-bench eval) from the catalog directories' quality/*.jsonl."""
        return list(self._rows("quality").rows.values())

    # -- lookups with suggestions -------------------------------------------------------------

    def model(self, model_id: str) -> ModelSpec:
        models = self.models
        if model_id in models:
            return models[model_id]
        raise UnknownIdError(
            "model", model_id, models, "planner catalog list models; add yours with add-model"
        )

    def gpu(self, gpu_id: str) -> GpuSpec:
        gpus = self.gpus
        if gpu_id in gpus:
            return gpus[gpu_id]
        raise UnknownIdError("GPU", gpu_id, gpus, "planner catalog list gpus")

    def measurement(self, record_id: str) -> MeasurementRecord:
        found = {m.id: m for m in self.measurements}
        if record_id in found:
            return found[record_id]
        raise UnknownIdError("measurement", record_id, found, "planner catalog list measurements")

    def api_price(self, name: str) -> ApiPrice:
        """Resolve 'gpt-4o-mini' or 'provider/model' (or an alias such as a dated version)."""
        prices = self.api_prices
        # 'provider/model' splits at the first slash: model ids hold slashes of their own
        # (deepinfra/meta-llama/Llama-3.3-70B-Instruct-Turbo), provider names never do.
        provider, _, model = name.partition("/")
        if not model or not any(p.provider == provider for p in prices):
            provider, model = "", name  # no provider prefix: a model id, maybe with a slash in it
        pool = [p for p in prices if not provider or p.provider == provider]
        lowered = model.lower()
        for match in (
            lambda p: p.model.lower() == lowered,
            lambda p: (
                lowered in (a.lower() for a in p.aliases) or (p.pinned_version or "").lower() == lowered
            ),
        ):
            hits = [p for p in pool if match(p)]
            if hits:
                return min(hits, key=_provider_rank)
        # Dated names genai-prices accepts by rule (starts_with claude-3-haiku, a regex): the most
        # specific rule wins, then the maker's own API.
        ranked = [(matches_rules(p, lowered), p) for p in pool]
        ranked = [(score, p) for score, p in ranked if score]
        if ranked:
            return min(ranked, key=lambda sp: (-sp[0], _provider_rank(sp[1])))[1]
        known = {f"{p.provider}/{p.model}" for p in prices} | {p.model for p in pool}
        raise UnknownIdError(
            "API model",
            name,
            known,
            "planner catalog list api --search TEXT; negotiated prices: api_overrides.yaml",
        )

    # -- checks -------------------------------------------------------------------------------

    def _cross_issues(self, kind: str) -> list[CatalogIssue]:
        """References between kinds: offers name GPUs, prices name models, records name both."""
        issues: list[CatalogIssue] = []
        if kind == "models":
            loaded = self.load("models")
            for key, model in loaded.rows.items():
                if model.published_params_b:
                    computed = param_counts(model.architecture).total / 1e9
                    off = abs(computed - model.published_params_b) / model.published_params_b
                    if off > PARAMS_TOLERANCE:
                        path, line = loaded.origin[key]
                        issues.append(
                            CatalogIssue(
                                path,
                                line,
                                f"id={model.id!r}",
                                f"architecture gives {computed:.2f}B parameters but published_params_b is "
                                f"{model.published_params_b}B ({off:.0%} apart); check the architecture",
                            )
                        )
        refs = {
            "offers": [("gpu", "gpus")],
            "api": [("open_model", "models")],
            "measurements": [("gpu", "gpus"), ("model", "models")],
            "checkpoints": [("model", "models")],
            "quality": [("catalog_model", "models")],
        }.get(kind, [])
        loaded = self.load(kind)
        for field, target in refs:
            known = self.load(target).rows
            for key, row in loaded.rows.items():
                value = getattr(row, field)
                if value is None or value in known:
                    continue
                path, line = loaded.origin[key]
                err = UnknownIdError(target.rstrip("s"), value, known)  # type: ignore[arg-type]
                hint = " (add it with planner catalog add-model)" if target == "models" else ""
                issues.append(
                    CatalogIssue(path, line, f"{KINDS[kind].label(row.model_dump())} {field}", f"{err}{hint}")
                )
        return issues

    def validate(self) -> list[CatalogIssue]:
        """Every problem in every kind, including references and order, at once."""
        issues: list[CatalogIssue] = []
        for kind in KINDS:
            issues.extend(self.load(kind).issues)
            issues.extend(self._cross_issues(kind))
        issues.extend(self._order_issues())
        return issues

    def _order_issues(self) -> list[CatalogIssue]:
        """Ids sorted within each file, so diffs stay small and duplicates are easy to see."""
        issues = []
        for kind in ("models", "gpus"):
            loaded = self.load(kind)
            by_file: dict[str, list[tuple[int, str]]] = {}
            for key, (path, line) in loaded.origin.items():
                by_file.setdefault(path, []).append((line or 0, str(key)))
            for path, entries in by_file.items():
                ids = [i for _, i in sorted(entries)]
                for before, after in itertools.pairwise(ids):
                    if after < before:
                        line = loaded.origin[after][1]
                        issues.append(
                            CatalogIssue(
                                path,
                                line,
                                f"id={after!r}",
                                f"out of order: move it before {before!r} (ids are sorted)",
                            )
                        )
                        break
        return issues

    def files(self) -> list[Path]:
        return [p for kind in KINDS for p in self.kind_files(kind)]

    def digest(self) -> str:
        """A short hash of every catalog file in use, for reports that must say what they rest on."""
        h = hashlib.sha256()
        for path in self.files():
            h.update(str(path.name).encode())
            h.update(path.read_bytes())
        return h.hexdigest()[:16]


def _provider_rank(price: ApiPrice) -> tuple[int, str]:
    rank = FIRST_PARTY.index(price.provider) if price.provider in FIRST_PARTY else len(FIRST_PARTY)
    return (rank, price.provider)
