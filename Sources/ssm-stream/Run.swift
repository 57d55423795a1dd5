import ArgumentParser
import SSM
