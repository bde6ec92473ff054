"""Run records and everything rendered from them (DESIGN.md section 7)."""
