<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/manual"><html><body><h1><xsl:value-of select="title"/></h1>
    <p><xsl:value-of select="para"/></p></body></html></xsl:template>
</xsl:stylesheet>
