#!/usr/bin/env node
// Runs a Tasker worker serving the handlers the given modules register.
"use strict";
require("../dist/ts/cli.js")
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
