"""DHL Shipment Tracking - Unified: status mapping, response parsing (pure) and the client."""
