"""Quality on the user's own cases (records written by gpu-bench eval) and routing economics."""
