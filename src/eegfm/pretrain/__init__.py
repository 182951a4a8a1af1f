"""Pretraining inside the workflow: recipes (``recipes``), the resumable job that runs one (``run``)
and the check for evaluation data that were pretraining data (``overlap``).

A recipe trains a registry architecture on windows of datasets with
``role: pretrain`` and writes its weights as a local folder, which
``backbones[].weights: pretrain:<name>`` then loads for embedding and
fine-tuning (so the fingerprint and every cache key follow the weights).
"""
