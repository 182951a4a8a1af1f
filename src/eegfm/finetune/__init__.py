"""Per-fold training on top of a backbone: heads, LoRA/QLoRA adapters, full fine-tuning.

``model`` assembles backbone + pooling + head, ``adapters`` puts LoRA
(peft, or a weight parametrization where peft cannot reach) and 4-bit
quantization (bitsandbytes) on it, ``regimes`` freezes and asserts what each
regime may train, ``train`` runs the optimisation with early stopping and
diagnostics, and ``run`` is the rule's entry point that writes the fold
artifacts. Everything here imports torch.
"""
