"""PII/PHI detection and redaction (pattern recognizers + validators + spaCy NER)."""
