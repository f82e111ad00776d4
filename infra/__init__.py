"""tinyllm infrastructure: the Pulumi program, its per-cloud components, the bundle builder and policy pack."""
