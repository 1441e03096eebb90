"""The reference agent: ticket triage (plan with a model, search the knowledge base, refund with human approval)."""
