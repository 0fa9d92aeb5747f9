// picshelf page script: progressive enhancement of the upload form.
"use strict";
