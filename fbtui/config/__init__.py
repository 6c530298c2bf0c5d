"""Lab, project and environment configuration: YAML with positions, typed models, resolution."""
