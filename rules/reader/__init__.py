"""The symptom reader: free-text descriptions of a problem (``--symptom``) read into symptom
ids. Its phrases and cue words live in the knowledge base (``knowledge/data/symptoms.yaml``);
the code here cuts text into parts, scopes negations and matches words or meaning.
"""
