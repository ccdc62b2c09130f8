"""Land registry plugin: one land office per province, HoSoXml files over SFTP (VBDLIS/ILIS style)."""
