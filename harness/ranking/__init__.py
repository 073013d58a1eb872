"""Ranking: transferability estimators and ``rank-models``, which scores candidate models on
the user's data without training them.
"""
