"""eegfm: measure how well pretrained EEG foundation models decode your own EEG."""

__version__ = "0.1.0"
