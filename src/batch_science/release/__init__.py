"""The paper's data release: its layout, the importer into our tables, the exporter back."""
