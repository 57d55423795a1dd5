import CSndfile
