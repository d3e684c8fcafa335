"""Analyses of the synthesized data and the synthesizer (the paper's Tables 5, 6, 9 and Fig. 6)."""
