"""tinyllm core: torch-free GPT-2 inference (numpy) and the HTTP contract shared by every cloud adapter."""
