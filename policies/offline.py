"""Evaluate the policy pack's rules against an offline plan (filled in by the policy pack work)."""


def evaluate(result) -> list[dict[str, str]]:
    return []
