"""The rules: experta engine, topic rule mixins, the Scenario and Plan contracts."""
