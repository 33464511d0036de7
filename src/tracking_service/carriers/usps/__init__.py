"""USPS Tracking 3.2: code mapping, response parsing (pure) and the HTTP client."""
