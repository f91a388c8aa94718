"""The scenarios of issue #7, each a function ``(run) -> None`` that adds its figures to ``run``."""
