"""Baseline evaluation (paper 4.3): LBP-TOP and SI/HK features, SVM, LOSO / 10x10-fold, fusion, reports."""
