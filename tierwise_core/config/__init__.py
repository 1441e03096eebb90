"""The environment configuration: load a YAML file into the typed `Environment` (sections, derived facts,
cross-section rules); `tierwise.config.slices` cuts it into what each stack receives."""

from .environment import Environment
from .loader import ConfigError, list_environments, load_environment

__all__ = ["ConfigError", "Environment", "list_environments", "load_environment"]
