"""Training: the models, the loop every training of the paper shares, and the jobs around it.

`stages` holds one entry point per training stage (pre-training from scratch or continual,
synthesizer tuning, instruction tuning, ceiling tuning); `launch` runs one on 1 or N processes.
"""
