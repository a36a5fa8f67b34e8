// Package config loads the exporter's YAML configuration, fills in defaults,
// validates it and turns each module into a ready probe.Settings.
//
// All file I/O (CA bundles, password and client secret files) happens at
// load time, so that a broken file is reported when the configuration is
// (re)loaded rather than in the middle of a scrape, and so that
// Module.Settings is cheap enough to call for every probe. An oauth2
// module's authenticator is built at load as well, once, so that its token
// cache lives as long as the module.
//
// Errors name the file, line and field they concern, in the form
//
//	config.yml:7: modules.hq.step_timeout: must not exceed timeout (30s)
//
// and a load reports every problem it finds, one per line, so an operator
// can fix a file in one pass.
//
// The package deliberately knows nothing about HTTP or Prometheus: data
// flows one way, from the configuration into the probe.
package config
