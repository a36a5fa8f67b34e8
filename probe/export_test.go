package probe

// LabSettings is labSettings for the external tests of package probe_test.
var LabSettings = labSettings
