"""The steps that turn one recording into labelled windows, used by :mod:`eegfm.windows`.

- :mod:`~eegfm.windowing.channel_types`: which channels are EEG (file types,
  names, overrides) and which are dropped;
- :mod:`~eegfm.windowing.preprocess`: channel selection, checks, band-pass,
  reference and resampling, for continuous and epoched recordings alike;
- :mod:`~eegfm.windowing.signal_checks`: NaN/Inf, flat channels or
  recordings and implausible amplitudes;
- :mod:`~eegfm.windowing.positions`: channel positions (a recording's own,
  else the 10-05 template), shared with the Python API;
- :mod:`~eegfm.windowing.events`: events (annotations, trigger channel,
  epochs) and labels (event names or a recording-level label);
- :mod:`~eegfm.windowing.rejection`: windows over ``BAD`` annotations,
  dropped as :class:`mne.Epochs` drops them;
- :mod:`~eegfm.windowing.continuous` and :mod:`~eegfm.windowing.epoched`:
  cutting the windows.
"""


class WindowsError(RuntimeError):
    """Recordings that cannot become windows; the message names the file and the fix."""
