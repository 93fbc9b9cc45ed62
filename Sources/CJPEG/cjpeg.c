int cjpeg_placeholder_unused(void) { return 0; }
