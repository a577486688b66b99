/* Replaces pydata-sphinx-theme's _static/scripts/fontawesome.js (Font Awesome's 1.5 MB
 * SVG-with-JavaScript bundle, which turns each <i class="fa-..."> into an inline SVG).
 * The theme's stylesheet already draws every fa-* icon from the Font Awesome webfont it
 * ships (_static/vendor/fontawesome/webfonts/), so the icons look the same without it.
 * A file in html_static_path replaces the theme's file of the same name (Sphinx copies the
 * theme's static files first). Owner: infra-widgets (page weight, issue 22). */
