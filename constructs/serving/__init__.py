"""Serving constructs: the model plane (vLLM servers, KEDA scaling, inference routes), the platform
services (router, RAG, guardrails), their data stores and the network policies between them."""
