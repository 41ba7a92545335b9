"""The pure domain: phases and their rules, models, filters and cursors. No I/O here."""
