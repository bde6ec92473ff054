"""What a platform's monitoring shows: GPU metrics coverage and attribution, and the capacity panel."""
