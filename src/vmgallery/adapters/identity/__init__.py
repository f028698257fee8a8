"""The authority's driven side: signing keys kept in the data dir (keys.py) and secret hashing (hashing.py)."""
