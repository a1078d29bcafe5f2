"""Speech and audio: WAV sources, Beam decode/resample stages, spectrogram input, audio models."""
