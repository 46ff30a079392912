<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:template match="/version">#define VERSION "<xsl:value-of select="@major"/>.<xsl:value-of select="@minor"/>"
</xsl:template>
</xsl:stylesheet>
