<?xml version="1.0" encoding="UTF-8"?>
<!-- feedpipe: shows an RSS 2.0 or Atom 1.0 feed as a readable page when opened in a browser. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes"
      doctype-system="about:legacy-compat"/>

  <xsl:template match="/">
    <html>
      <xsl:attribute name="lang">
        <xsl:value-of select="rss/channel/language | atom:feed/@xml:lang"/>
      </xsl:attribute>
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="rss/channel/title | atom:feed/atom:title"/> (feed)</title>
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
          .note { background: #fff8d6; border: 1px solid #e6d690; border-radius: 6px; padding: .75rem 1rem; }
          .note code { word-break: break-all; }
          ol { padding: 0; list-style: none; }
          li { margin: 1.25rem 0; }
          li a { font-size: 1.1rem; font-weight: 600; }
          time, .meta { color: #666; font-size: .9rem; }
        </style>
      </head>
      <body>
        <xsl:apply-templates select="rss/channel | atom:feed"/>
      </body>
    </html>
  </xsl:template>

  <xsl:template name="note">
    <xsl:param name="url"/>
    <p class="note">
      <strong>This is a web feed.</strong>
      Copy its address into your feed reader to follow new posts:
      <code><xsl:value-of select="$url"/></code>
    </p>
  </xsl:template>

  <!-- RSS 2.0 -->
  <xsl:template match="channel">
    <xsl:call-template name="note">
      <xsl:with-param name="url" select="atom:link[@rel='self']/@href"/>
    </xsl:call-template>
    <h1><a href="{link}"><xsl:value-of select="title"/></a></h1>
    <p><xsl:value-of select="description"/></p>
    <ol>
      <xsl:for-each select="item">
        <li>
          <a href="{link}"><xsl:value-of select="title"/></a>
          <div class="meta"><time><xsl:value-of select="pubDate"/></time></div>
          <p><xsl:value-of select="description"/></p>
        </li>
      </xsl:for-each>
    </ol>
  </xsl:template>

  <!-- Atom 1.0 -->
  <xsl:template match="atom:feed">
    <xsl:call-template name="note">
      <xsl:with-param name="url" select="atom:link[@rel='self']/@href"/>
    </xsl:call-template>
    <h1><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h1>
    <p><xsl:value-of select="atom:subtitle"/></p>
    <ol>
      <xsl:for-each select="atom:entry">
        <li>
          <a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a>
          <div class="meta">
            <time datetime="{atom:published}"><xsl:value-of select="substring(atom:published, 1, 10)"/></time>
          </div>
          <p><xsl:value-of select="atom:summary"/></p>
        </li>
      </xsl:for-each>
    </ol>
  </xsl:template>
</xsl:stylesheet>
