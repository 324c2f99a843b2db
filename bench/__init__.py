"""Benchmarks of the running appliance (see bench/register)."""
