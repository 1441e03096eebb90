"""TW-AGENT checks: agents' identity, model access and egress, read from the synthesized output."""
