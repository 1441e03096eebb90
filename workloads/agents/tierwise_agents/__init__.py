"""tierwise agent runtime: a queue worker that runs an agent program step by step, checkpointing after
each step so a killed agent resumes where it stopped, never repeating a completed step."""
