"""What the pixels show, read without the caption model: photo or drawing, colours, people."""
