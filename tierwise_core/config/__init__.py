from .loader import ConfigError, list_environments, load_environment
from .environment import Environment

__all__ = ["ConfigError", "Environment", "list_environments", "load_environment"]
