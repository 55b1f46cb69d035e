"""The control plane: the one write path from an environment definition to the system."""
