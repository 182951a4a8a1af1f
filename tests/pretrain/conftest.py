from tests.finetune.conftest import ft_data  # noqa: F401 — the same small real dataset
