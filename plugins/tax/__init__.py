"""The tax authority: financial obligations of land transfers over SOAP 1.1; payments followed by polling."""
