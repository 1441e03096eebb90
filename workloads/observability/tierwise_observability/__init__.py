"""tierwise observability: rules, dashboards and scrape configs as code, the dual cost report, GenAI tracing."""

__version__ = "0.1.0"
