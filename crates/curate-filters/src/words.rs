//! Word splitting (filled in below).
