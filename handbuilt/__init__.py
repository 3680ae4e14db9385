"""The hand-built ("artificial artificial") curve-detector network."""
