"""tierwise model supply chain: traces -> dataset -> LoRA -> gate -> registry -> vLLM."""
