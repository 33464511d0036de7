"""UPS Track API: code mapping, response parsing (pure) and the HTTP client."""
