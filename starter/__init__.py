"""The backend's door: typed client functions, the `billing` CLI, the simulator and the dev runner."""
